import { ClusterWatchSuite } from "@sovereign/testkit"
import { Duration, Layer } from "effect"
import * as KubernetesClusterWatch from "../src/KubernetesClusterWatch.js"

ClusterWatchSuite.suite(
  "kubernetes, against the fake API server through @kubernetes/client-node",
  Layer.merge(
    KubernetesClusterWatch.layer({ reconnectInitialDelay: Duration.millis(20), reachability: { initialDelay: Duration.millis(20) } }),
    ClusterWatchSuite.fakeKubernetesDriverLayer()
  ),
  { faults: true }
)
