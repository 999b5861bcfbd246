"""Analysis (分析): experiments, campaign review, churn by segment, the strategy playbook, the report.

- :mod:`~huaxiang.analysis.stats`: z test, Welch's t, confidence intervals, sample sizes.
- :mod:`~huaxiang.analysis.experiments`: definitions (pydantic), stable assignment through the
  audience engine's salted split, campaigns read from the ``touches`` table.
- :mod:`~huaxiang.analysis.metrics`: results against control, per segment, the follow-up funnel.
- :mod:`~huaxiang.analysis.outcomes`: touch outcomes (opened / used) imported from a file.
- :mod:`~huaxiang.analysis.store`: experiments and results in the metadata database.
- :mod:`~huaxiang.analysis.campaign`: campaign review by segment × weekday, churn per week.
- :mod:`~huaxiang.analysis.playbook`: segments → actions, personalised coupon thresholds.
- :mod:`~huaxiang.analysis.report`: the self-contained HTML report (Plotly inlined).

See docs/analysis.md.
"""
