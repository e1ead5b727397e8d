export * as FakeKubernetesApi from "./FakeKubernetesApi.js"
