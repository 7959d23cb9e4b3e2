"""Example.Select: a run's first job is made with its outputs (runyard run new --outputs), so
this script runs only for a run made without them."""

from runyard import task

task.fail("start the run with its value: runyard run new Study Select --outputs '{\"value\": 3}'")
