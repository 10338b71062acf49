"""The paper's results, reproduced from the shipped checkpoints: one module per domain.

``sinusoid`` (Table 2, Figures 2 and 3), ``omniglot`` (Table 1) and ``navigation``
(Table 4, Figure 5) have the same shape:

- the paper's numbers, as constants (``PAPER_TABLE2``; ``PAPER_TABLE1`` and Nichol et
  al.'s first-order ``PAPER_FIRST_ORDER``; ``PAPER_TABLE4`` with the random policy read
  off Figure 5);
- the shipped checkpoints, label -> path (``CHECKPOINTS``; Omniglot per setting:
  ``checkpoint_paths(n_way, k_shot)``, and ``shipped_checkpoints()`` for every setting),
  and ``load_learners(device=...)``: the shipped learners and the baselines (pre-trained,
  scratch, random), ready to evaluate;
- ``evaluate(num_tasks, device, progress=False)``: every number of the chapter as a
  JSON-friendly dict, what ``python -m mamllib.reproduce <domain>`` writes to
  ``results/<domain>.json``;
- ``figures(results)``: file name -> Figure, the drawings of ``mamllib.viz.figures`` on
  the evaluated numbers and on the data they compute (``fits_data``, ``navigation_paths``);
- ``table_markdown(results)``: the paper's table beside ours (Omniglot also ``summary``).

``python -m mamllib.reproduce`` is a thin command line over them.
"""
