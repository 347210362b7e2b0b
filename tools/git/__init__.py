"""The git toolset: status, diff, commit, log and push of the project's repository, with the dbt nodes each change touches."""
