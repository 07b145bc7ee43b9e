"""The Ambulatory Glucose Profile report (HTML + PNG), read from the gold marts only.

`cascade.report.build.write_report` makes it; `cascade report` (`cascade.cli.report`) is the command.
"""
