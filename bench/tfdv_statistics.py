"""TFDV statistics the way StatisticsGen computes them, with TFDV's own read (TFXIO's BeamSource and batching) over our
strict record reader: the baseline the benchmark's one read pass is measured against (`statistics_alone`), and what
tests compare the read pass's statistics with. Not used by tfx_preflight itself: its checks get statistics from the
read pass (tfx_preflight/inputs/read_pass.py)."""

from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional

import apache_beam as beam
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from tfx_preflight.inputs import data, records, statistics

TELEMETRY_DESCRIPTORS = ['TfxPreflight']


class ReadRecords(beam.PTransform):
  """The serialized records of `files`, read strictly (records.py), a drop-in for ReadFromTFRecord.

  One file per element after a Reshuffle, so files spread over workers (gzip is not splittable anyway, and neither
  is Beam's own TFRecord source).
  """

  def __init__(self, files: List[str]):
    super().__init__()
    self._files = sorted(files)

  def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
    return (pbegin
            | 'Files' >> beam.Create(self._files)
            | 'SpreadFiles' >> beam.Reshuffle()
            | 'ReadStrictly' >> beam.FlatMap(records.read_records))


def generate_statistics(examples: Mapping[str, str], make_pipeline: Callable[[], beam.Pipeline], output_dir: str,
                        schema: Optional[schema_pb2.Schema] = None
                        ) -> Dict[str, statistics_pb2.DatasetFeatureStatisticsList]:
  """Computes TFDV statistics of every split in ONE Beam pipeline, as StatisticsGen would, and loads them back.

  The checks get theirs from the read pass (read_pass.py, statistics from the batches the other checks use); this is
  TFDV's own read (TFXIO batching): the benchmark's baseline, and what the tests compare the read pass against.

  Args:
    examples: split name -> file pattern of tf.Example TFRecords (gzip detected from the bytes).
    make_pipeline: builds the Beam pipeline (so the component's `beam_pipeline_args` apply).
    output_dir: statistics are written to `output_dir/Split-<split>/FeatureStats.pb`.
    schema: optional; as in StatisticsGen, it makes categorical ints get categorical statistics.
  """
  from tfx_bsl.public import tfxio  # With TFDV: heavy import.
  tfdv_module = statistics.tfdv()
  options = statistics.stats_options(schema)
  files = {split: data.split_matching_files(pattern, f'split {split!r}') for split, pattern in examples.items()}
  with make_pipeline() as pipeline:
    for split in sorted(examples):
      source = tfxio.TFExampleBeamRecord(physical_format='tfrecord', telemetry_descriptors=TELEMETRY_DESCRIPTORS)
      _ = (pipeline
           | f'ReadExamples[{split}]' >> ReadRecords(files[split])
           | f'ToRecordBatches[{split}]' >> source.BeamSource()
           | f'GenerateStatistics[{split}]' >> tfdv_module.GenerateStatistics(options)
           | f'WriteStatistics[{split}]' >> tfdv_module.WriteStatisticsToBinaryFile(
               statistics.statistics_path(output_dir, split)))
  return statistics.load_statistics(output_dir, examples)
