"""Every name shared across modules, defined once: checks, statuses, artifact types, MLMD properties, files.

Users read these names in report.json, in ML Metadata and in the report directory (their CI, a `tfx.dsl.Cond`), so
they are a contract: add freely, never rename. Plain strings only, no imports, so any module (and pipelines/,
kubeflow/) can use them without loading TFX. As TFX's `standard_component_specs.py` does for its keys.
"""

# Checks, in report order (report.json `checks.<name>`, report.html sections, `--checks`, per-check subdirectories).
SKEW = 'skew'
LEAKAGE = 'leakage'
LOSS = 'loss'
LABEL_PROXY = 'label_proxy'
CHECK_NAMES = (SKEW, LEAKAGE, LOSS, LABEL_PROXY)

# Kinds of duplicates the leakage check counts (its counters, the pair tables of report.html).
LEAKAGE_EXACT = 'exact'
LEAKAGE_NEAR = 'near'
LEAKAGE_GROUP = 'group'
LEAKAGE_HISTORY = 'history'  # eval examples found in the training data of earlier runs (their train_hashes).

# Check statuses and verdicts. A check is 'skipped' when it did not run, 'not_checked' when it ran but compared nothing.
PASS = 'pass'
WARN = 'warn'
BLOCK = 'block'
SKIPPED = 'skipped'
NOT_CHECKED = 'not_checked'
SEVERITIES = (WARN, BLOCK)  # Of a finding.
# Severity order: max() of these ranks is a check's status and the verdict; negative ranks prove nothing.
STATUS_RANK = {SKIPPED: -1, NOT_CHECKED: -1, PASS: 0, WARN: 1, BLOCK: 2}
BLESSED_VERDICTS = (PASS, WARN)  # Only an earned pass or warn lets training proceed.

# Output artifact types (`<namespace>.<Name>`, the form KubeflowV2DagRunner requires of custom types).
REPORT_TYPE_NAME = 'tfx_preflight.PreflightReport'
BLESSING_TYPE_NAME = 'tfx_preflight.PreflightBlessing'
TRAIN_HASHES_TYPE_NAME = 'tfx_preflight.TrainHashes'

# Custom properties of the blessing artifact: `blessed` is what `tfx.dsl.Cond(... custom_property('blessed') == 1)`
# reads; `verdict` and `report` (the report artifact's URI) say why.
BLESSED_PROPERTY = 'blessed'
VERDICT_PROPERTY = 'verdict'
REPORT_PROPERTY = 'report'

# Custom properties of the report artifact (run.headline_numbers): the verdict, `blessed`, and per check
# `<check>_status` / `<check>_findings`, plus the leakage headline numbers below.
LEAKED_EVAL_EXAMPLES_PROPERTY = 'leaked_eval_examples'
MAX_LEAKED_FRACTION_PROPERTY = 'max_leaked_fraction'
# Custom properties of the train_hashes artifact (besides `blessed`): train examples hashed, distinct hashes kept.
HASHED_EXAMPLES_PROPERTY = 'examples'
DISTINCT_HASHES_PROPERTY = 'distinct_hashes'
# Custom property of the example_statistics output, named and encoded as StatisticsGen's (split -> sample rate).
SAMPLE_RATE_BY_SPLIT_PROPERTY = 'sample_rate_by_split'


def status_property(check: str) -> str:
  """The report artifact's custom property holding `check`'s status, e.g. 'skew_status'."""
  return f'{check}_status'


def findings_property(check: str) -> str:
  """The report artifact's custom property holding how many findings `check` has, e.g. 'skew_findings'."""
  return f'{check}_findings'


# Marker files in the blessing artifact's directory, as ModelBlessing writes BLESSED / NOT_BLESSED.
BLESSED_FILE = 'BLESSED'
NOT_BLESSED_FILE = 'NOT_BLESSED'

# Files of the report directory. report.json is written last: its presence means a complete report.
REPORT_JSON = 'report.json'
LOCK_FILE = '.lock'  # Every local report directory keeps it (report_dir.py's flock); it holds no report.
REPORT_HTML = 'report.html'
STATISTICS_HTML = 'statistics.html'  # The first eval split's; others are statistics-<n>.html.
DUPLICATES_FILE = 'duplicates.tsv'  # Under leakage/: every example whose hash occurs more than once.
LEAKAGE_STATS_FILE = 'leakage_stats.json'  # Under leakage/: the merged counters of the Beam job.
STATISTICS_DIR = 'statistics'  # Computed statistics, laid out as StatisticsGen's ExampleStatistics artifact:
STATS_FILE_NAME = 'FeatureStats.pb'  # statistics/Split-<split>/FeatureStats.pb.
# A train_hashes directory (the TrainHashes artifact, the CLI's --save-history): hashes-<shard>.npy files, then this
# manifest, written last (its presence means a complete directory).
TRAIN_HASHES_MANIFEST = 'train_hashes.json'
