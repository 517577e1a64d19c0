"""${{ values.description }}"""
