"""Converters: one reader per annotation format; each returns a `SampleStream` of `Sample`s."""
