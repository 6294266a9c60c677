"""Train/eval skew from TFDV statistics: comparators, diagnoses, departing spans, its HTML section."""
