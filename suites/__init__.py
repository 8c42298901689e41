"""The tier engine: run a tier's pytest, stream its events, judge the run honestly.

Modules (this package's `__init__` imports nothing: our pytest plugin, `suites.plugin`, is imported by the tier's
own interpreter, which may lack everything but pytest):
  events      typed events of a run, and the progress they add up to
  plugin      the pytest plugin (`-p suites.plugin`) that streams one JSON line per event
  runner      `TierRunner`: pytest in its own process group, with a timeout and a clean kill
  verdict     `judge(...) -> Verdict`: pure; the reason codes
  flakiness   flip rates from history: pure
  history     `TierHistory`, `TestHistory`, `TestResultRecord`: plain values the store fills and consumes
  report      `TierReport`, its JSON contract and terminal renderings: pure
  engine      `TierEngine`: dependency probes around a run, then verdict and report
  staging/    the staging E2E suite tiers point at
"""
