"""Load benchmarks of the Stifinder web app (run ``bench/run.sh``; results in bench/RESULTS.md)."""
