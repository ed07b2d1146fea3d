"""Self-tests: the checks a service engineer's quarterly inspection runs, and the runner.

A check is a small unit (:mod:`.model`) with an id, a title, what it measures,
its limits and, when run, an outcome — pass, warn, fail or error — with the
measured values and findings that say what is wrong in words.  Profiles
(:mod:`.profiles`) choose which checks run and how thoroughly; the runner
(:mod:`.runner`) runs a profile, compares with the previous run and keeps the
result (:mod:`.history`); the schedule (:mod:`.schedule`) runs the quarterly
inspection on its own, catching up a missed one.
"""
