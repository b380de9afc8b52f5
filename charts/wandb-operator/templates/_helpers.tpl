{{/* Chart name (63 characters at most). */}}
{{- define "wandb-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects (63 characters at most). */}}
{{- define "wandb-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of cluster-scoped objects (ClusterRole, ClusterRoleBinding): the full name prefixed with the
release namespace, so releases of the same name in two namespaces never collide.
*/}}
{{- define "wandb-operator.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "wandb-operator.fullname" .) }}
{{- end }}

{{/* Selector labels (stable across upgrades). */}}
{{- define "wandb-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wandb-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "wandb-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "wandb-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: wandb
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* ServiceAccount name. */}}
{{- define "wandb-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wandb-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image reference: repository:tag, plus @digest when one is set (default tag: appVersion). */}}
{{- define "wandb-operator.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $ref .Values.image.digest }}
{{- else }}
{{- $ref }}
{{- end }}
{{- end }}

{{/* Name of the ConfigMap holding the extra CA certificates ("" when none). */}}
{{- define "wandb-operator.caConfigMap" -}}
{{- if .Values.caCerts.existingConfigMap }}
{{- .Values.caCerts.existingConfigMap }}
{{- else if .Values.caCerts.certs }}
{{- printf "%s-ca-certs" (include "wandb-operator.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The rules of the operator on namespaced resources: identical in the ClusterRole (cluster scope)
and in each watched namespace's Role (namespaced scope). Leases are not here: they are a Role in
the release namespace only.
*/}}
{{- define "wandb-operator.namespacedRules" -}}
# The WeightsAndBiases instances: read, and update metadata (finalizers on the object itself).
- apiGroups: ["apps.wandb.com"]
  resources: ["weightsandbiases"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["apps.wandb.com"]
  resources: ["weightsandbiases/status", "weightsandbiases/finalizers"]
  verbs: ["get", "patch", "update"]
# What an instance owns.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["services", "secrets", "configmaps", "serviceaccounts", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# spec.networking.mode gateway (granted even where the Gateway API CRDs are not installed:
# rules on resources that do not exist are harmless, and installing the CRDs later then works).
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gateways", "httproutes"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# Roles for the instance's workloads (secrets get/create/update/delete and get on their own
# namespace: W&B's secret store; the operator holds both itself, so no escalate/bind).
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# Events about the instances.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# FailedCreate events of a StatefulSet or Job that has no pods, read only then: why its pods
# cannot be created goes into the instance's Ready condition.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
# Pods: read-only, for status and troubleshooting.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# The namespace object itself, read-only: granted on to the workloads' Role (W&B's secret store
# reads its namespace); in namespaced scope this is each watched namespace only.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get"]
{{- end }}

{{/* toYaml of a map without its null entries: a values file may null a key (values-openshift.yaml
nulls any fixed uid), which Helm keeps as null when another values file set it. */}}
{{- define "wandb-operator.toYamlWithoutNulls" -}}
{{- $out := dict }}
{{- range $k, $v := . }}
{{- if not (kindIs "invalid" $v) }}{{ $_ := set $out $k $v }}{{ end }}
{{- end }}
{{- toYaml $out }}
{{- end }}
