"""Train: preparation in Spark (shards), the shard stream, augmentation, the network, fitting and
the whole training run."""
