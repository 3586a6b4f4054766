"""TFRecords: tf.train.Example encoding, the sharded parallel writer, conversion, reading back, inspection."""
