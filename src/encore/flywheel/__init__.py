"""The feedback flywheel: on-policy rounds ranked by a reward model learnt from the logs (`encore flywheel`).

- `loop`: the rounds, the matched-compute control and the paired report (the command's body);
- `sampling`: the training requests and the policy's n samples of each;
- `feedback`: the logs as they grow and the reward model fit on them;
- `reward`: that reward model, a playlist's score from the learned reranker and the programmatic checks;
- `pairs`: best-vs-worst pairs under margin and length rules;
- `scoring`: each policy on the held-out requests, and paired differences.
"""
