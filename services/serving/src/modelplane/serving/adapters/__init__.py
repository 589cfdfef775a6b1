"""Clients of other services: the registry (model versions, alias events, alias moves),
observability (the prediction log, rollout evidence and alerts) and the featurestore
(online features, datasets). The domain modules define the seams these fill."""
