"""Leakage: exact and near duplicates across and within splits, chance, history of trained hashes."""
