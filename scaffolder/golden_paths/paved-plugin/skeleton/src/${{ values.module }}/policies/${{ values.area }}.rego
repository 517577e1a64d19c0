# Who may use ${{ values.title }}: part of the decision in Paved's authz.rego (package
# paved.authz), which allows an action when a rule grants it and no rule denies it. Names
# of this plugin's own rules start with ${{ values.area }}_ so they meet no other plugin's.
package paved.authz

import rego.v1

${{ values.area }}_readers := {"data_scientist", "ml_engineer", "team_lead"}

${{ values.area }}_requesters := {"ml_engineer", "team_lead"}

grants contains sprintf("your role %s allows %s", [role, input.action]) if {
	input.action == "${{ values.area }}.page.read"
	some role in input.user.roles
	role in ${{ values.area }}_readers
}

grants contains sprintf("your role %s allows %s", [role, input.action]) if {
	input.action == "${{ values.area }}.review.request"
	some role in input.user.roles
	role in ${{ values.area }}_requesters
}

# A review is asked for by a team: someone in no group has no component to review.
denials contains "you are in no team yet, so you have no component to ask a review of; ask a team lead to add you to their group" if {
	input.action == "${{ values.area }}.review.request"
	not is_admin
	count(input.user.groups) == 0
}
