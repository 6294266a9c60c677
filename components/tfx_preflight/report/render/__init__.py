"""HTML machinery every check draws with: the report.html page, the statistics page, escaping.

Nothing here decides a status or writes a file. Every value from the data is escaped, and every page forbids scripts
(Content-Security-Policy).
"""
