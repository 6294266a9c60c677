"""Features that give the label away, measured on eval: counts, pairs, scoring, its HTML section."""
