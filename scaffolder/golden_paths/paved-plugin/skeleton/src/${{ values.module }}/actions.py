"""The policy actions this plugin declares; its Rego module says who may do them."""

from portal import Action

PAGE_READ = Action("${{ values.area }}.page.read", "See ${{ values.title }} and a team's components")
REVIEW_REQUEST = Action("${{ values.area }}.review.request", "Ask for a review of a component")
