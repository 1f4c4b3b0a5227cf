// Attribute and metric names podnet uses. Stable OTel names are re-exported from the semconv package;
// names that are still "development" upstream are copied here (the `/incubating` entry point may change
// in any minor release), and podnet's own names live under `podnet.`.
export {
  ATTR_ERROR_TYPE,
  ATTR_NETWORK_TRANSPORT,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
} from '@opentelemetry/semantic-conventions';

// Kubernetes (stable upstream, but exported only from /incubating in 1.45.0).
export const ATTR_K8S_POD_UID = 'k8s.pod.uid';
export const ATTR_K8S_POD_NAME = 'k8s.pod.name';
export const ATTR_K8S_NAMESPACE_NAME = 'k8s.namespace.name';
export const ATTR_K8S_NODE_NAME = 'k8s.node.name';
export const ATTR_K8S_CLUSTER_NAME = 'k8s.cluster.name';
export const ATTR_SERVICE_INSTANCE_ID = 'service.instance.id';
export const ATTR_K8S_POD_LABEL_PREFIX = 'k8s.pod.label.';
export const ATTR_HOST_NAME = 'host.name';
export const ATTR_NETWORK_IO_DIRECTION = 'network.io.direction';
/** Stable, opt-in upstream: a stack as one multi-line string (as `exception.stacktrace`). */
export const ATTR_CODE_STACKTRACE = 'code.stacktrace';

// podnet's own attributes.
export const ATTR_PODNET_ENTITY_KIND = 'podnet.entity.kind';
export const ATTR_PODNET_NETNS_INODE = 'podnet.netns.inode';
export const ATTR_PODNET_NETNS_NAME = 'podnet.netns.name';
export const ATTR_PODNET_EVENT_TYPE = 'podnet.event.type';
export const ATTR_PODNET_KERNEL_STACK = 'podnet.kernel.stack';
export const ATTR_PODNET_PROBE_NAME = 'podnet.probe.name';
export const ATTR_PODNET_PROBE_STATE = 'podnet.probe.state';
export const ATTR_PODNET_EVENT_OUTCOME = 'podnet.event.outcome';
export const ATTR_PODNET_METRIC_NAME = 'podnet.metric.name';
export const ATTR_PODNET_EXPORT_SIGNAL = 'podnet.export.signal';
export const ATTR_PODNET_CAPTURE_OUTCOME = 'podnet.capture.outcome';

/** `podnet.entity.kind` of data that belongs to no watched netns (netns 0 or an unknown inode). */
export const ENTITY_KIND_UNATTRIBUTED = 'unattributed';

/** Keys the pipeline sets on every per-entity point and event; probes must not set them. */
export const ENTITY_KEYS: readonly string[] = [
  ATTR_PODNET_ENTITY_KIND,
  ATTR_PODNET_NETNS_INODE,
  ATTR_PODNET_NETNS_NAME,
  ATTR_K8S_POD_UID,
  ATTR_K8S_POD_NAME,
  ATTR_K8S_NAMESPACE_NAME,
];
