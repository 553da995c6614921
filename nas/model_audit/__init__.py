"""Audit the chosen model: ``nas.audit(result)`` / ``nas-audit RUN_DIR``.

The top candidates of a finished search and benchmark models (majority class, logistic regression,
k-nearest neighbours: scikit-learn's; a declared human level), side by side on the test split:

- per class: precision, recall, F1, support, confusion matrix, macro and weighted averages, bootstrap
  intervals, rare classes flagged (:mod:`nas.model_audit.metrics`, the point figures scikit-learn's);
- slices: the user's group arrays and those the audit derives (true class, confidence, brightness or
  energy quartiles), worst first; fairness across each declared group (fairlearn's ``MetricFrame``:
  rates, accuracy and AUC per group, the largest gap and smallest ratio) (:mod:`nas.model_audit.slices`);
- calibration: expected calibration error and the reliability diagram;
- robustness: accuracy under Gaussian noise, FGSM and PGD on the model's own gradients, and random inputs
  at volume (:mod:`nas.model_audit.robustness`).

Written to ``audit/report.md``, ``audit/report.json``, PNG pictures and TensorBoard (``tb/audit``).
"""

from nas.model_audit.report import AuditReport
from nas.model_audit.run import AuditSettings, audit

__all__ = ["AuditReport", "AuditSettings", "audit"]
