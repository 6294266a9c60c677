"""The input side shared by every check: records and CSV staging, the one read pass, statistics, content hashes."""
