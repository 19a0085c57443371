"""Parses authgate's /metrics (stdin) with prometheus_client's OpenMetrics
parser, a real implementation independent of the one that wrote it, and
prints every sample as JSON: [{"name", "labels", "value"}]. A parse error
exits non-zero."""
import json
import math
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        value = None if math.isnan(s.value) else s.value
        samples.append({"family": family.name, "type": family.type, "name": s.name,
                        "labels": s.labels, "value": value})
print(json.dumps(samples))
