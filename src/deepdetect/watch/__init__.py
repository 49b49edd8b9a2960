"""Deletion support: watch reported URLs, keep evidence in WARC files, verify removal (`deepdetect-watch`)."""
