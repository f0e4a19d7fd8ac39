"""Reading, format adapters and lossless writing."""

from dataaudit.io.formats import FieldMapping, format_names
from dataaudit.io.load import load
from dataaudit.io.options import LoadOptions
from dataaudit.io.shards import write_partition_dir
from dataaudit.io.writers import PartitionCounts, write_partition

__all__ = ["FieldMapping", "LoadOptions", "PartitionCounts", "format_names", "load", "write_partition", "write_partition_dir"]
