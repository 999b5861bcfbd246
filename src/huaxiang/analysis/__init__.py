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
- :mod:`~huaxiang.analysis.charts`: the Plotly figures the report and the console share, in
  Chinese, English or both.
- What the console's pages read: :mod:`~huaxiang.analysis.overview` (users, buyers, GMV, ARPU),
  :mod:`~huaxiang.analysis.segment_stats` (sizes and ARPU per segment, heatmaps, AIPL),
  :mod:`~huaxiang.analysis.tag_catalog` (search, filter, one tag's detail),
  :mod:`~huaxiang.analysis.segment_flows` (migrations, value groups) and
  :mod:`~huaxiang.analysis.experiment_views` (the experiment list, breakdown tags).

See docs/analysis.md.
"""
