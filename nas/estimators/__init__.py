"""Estimators: training, table lookup and zero-cost proxies behind one contract (:mod:`nas.estimators.base`),
and the torch helpers they share."""
