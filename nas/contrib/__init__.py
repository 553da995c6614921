"""Parts that know a particular benchmark or method: NAS-Bench-201 (:mod:`nas.contrib.nb201`),
learning-curve extrapolation and its pruner (:mod:`nas.contrib.curves`, :mod:`nas.contrib.lce_pruner`), the
learning-curve scheduler behind ``pruner=lce`` (:mod:`nas.contrib.lce_scheduler`),
fidelity checks (:mod:`nas.contrib.fidelity`). They may use the rest of nas; nothing outside
``nas.contrib`` imports them (``tests/test_architecture_rules.py``)."""
