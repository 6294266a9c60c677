"""A Trainer module written for ExampleGen's output, as the older TFX taxi examples read it: gzipped TFRecords
(`tf.data.TFRecordDataset(..., compression_type='GZIP')`), a feature spec written by hand. Columns a, b (float) and
label (0/1)."""

import tensorflow as tf


def _gzip_reader_fn(filenames):
  return tf.data.TFRecordDataset(filenames, compression_type='GZIP')


def _input_fn(file_pattern, batch_size=16):
  spec = {'a': tf.io.FixedLenFeature([], tf.float32), 'b': tf.io.FixedLenFeature([], tf.float32),
          'label': tf.io.FixedLenFeature([], tf.int64)}
  return tf.data.experimental.make_batched_features_dataset(file_pattern, batch_size, spec, reader=_gzip_reader_fn,
                                                            label_key='label')


def run_fn(fn_args):
  inputs = {name: tf.keras.Input(shape=(1,), name=name) for name in ('a', 'b')}
  hidden = tf.keras.layers.Dense(8, activation='relu')(tf.keras.layers.concatenate(list(inputs.values())))
  model = tf.keras.Model(inputs, tf.keras.layers.Dense(2, activation='softmax')(hidden))
  model.compile(optimizer='adam', loss='sparse_categorical_crossentropy')
  model.fit(_input_fn(fn_args.train_files), steps_per_epoch=fn_args.train_steps,
            validation_data=_input_fn(fn_args.eval_files), validation_steps=fn_args.eval_steps)
