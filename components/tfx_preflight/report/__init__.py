"""The report side: typed results, report.json and the verdict, the report directory, summaries, progress, HTML."""
