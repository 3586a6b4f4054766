"""Mask R-CNN configs: protobuf-text pipeline.config editing, Model Garden experiment YAML, the
generator, and cross-field checks."""
