"""The analysts' triage report: prediction records (and their run header) -> one self-contained HTML page.

`records` reads what `deepdetect-predict` wrote, `provenance` and `thumbs` look at the files themselves, `render`
turns it all into HTML and `report.build_report` ties them together (`deepdetect-report` on the command line).
"""
