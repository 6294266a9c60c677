"""Every name shared across modules, defined once: checks, statuses, artifact types, MLMD properties, files.

Users read these names in report.json, in ML Metadata and in the report directory (their CI, a `tfx.dsl.Cond`), so
they are a contract: add freely, never rename. Plain strings (statuses and severities as str-valued enums, written as
their strings) and no import but the standard library, so any module (and pipelines/, kubeflow/) can use them without
loading TFX. As TFX's `standard_component_specs.py` does for its keys.
"""

import enum

# Checks (report.json `checks.<name>`, report.html sections, `--checks`, per-check subdirectories). Their order, and
# the list of every check, is config.CHECK_NAMES: the sections of PreflightConfig.
SKEW = 'skew'
LEAKAGE = 'leakage'
LOSS = 'loss'
LABEL_PROXY = 'label_proxy'

# Kinds of duplicates the leakage check counts (its counters, the pair tables of report.html).
LEAKAGE_EXACT = 'exact'
LEAKAGE_NEAR = 'near'
LEAKAGE_GROUP = 'group'
LEAKAGE_HISTORY = 'history'  # eval examples found in the training data of earlier runs (their train_hashes).


class _Text(str, enum.Enum):
  """A str-valued enum that is its string everywhere: in json.dumps, f-strings, str() and comparisons with text."""

  def __str__(self) -> str:
    return self.value

  def __format__(self, spec: str) -> str:
    return format(self.value, spec)


class Status(_Text):
  """A check's status and the run's verdict. 'skipped': the check did not run; 'not_checked': it ran but compared
  nothing."""
  PASS = 'pass'
  WARN = 'warn'
  BLOCK = 'block'
  SKIPPED = 'skipped'
  NOT_CHECKED = 'not_checked'

  @property
  def rank(self) -> int:
    """Severity order: max() of these ranks is a check's status and the verdict; negative ranks prove nothing."""
    return STATUS_RANK[self]


class Severity(_Text):
  """A finding's severity: the status it gives its check."""
  WARN = 'warn'
  BLOCK = 'block'

  @property
  def status(self) -> Status:
    return Status(self.value)


# The public names users see (pipelines, `tfx.dsl.Cond`, the CLI's exit codes) read the enums' members.
PASS = Status.PASS
WARN = Status.WARN
BLOCK = Status.BLOCK
SKIPPED = Status.SKIPPED
NOT_CHECKED = Status.NOT_CHECKED
SEVERITIES = tuple(Severity)  # Of a finding.
STATUS_RANK = {Status.SKIPPED: -1, Status.NOT_CHECKED: -1, Status.PASS: 0, Status.WARN: 1, Status.BLOCK: 2}
BLESSED_VERDICTS = (Status.PASS, Status.WARN)  # Only an earned pass or warn lets training proceed.

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
