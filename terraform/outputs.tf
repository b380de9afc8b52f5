output "url" {
  description = "Public URL of W&B (spec.wandb.hostname)."
  value       = local.url
}

output "instance_name" {
  description = "Name of the WeightsAndBiases resource."
  value       = var.instance_name
}

output "instance_namespace" {
  description = "Namespace of the resource and its workloads."
  value       = var.instance_namespace
}

output "operator_namespace" {
  description = "Namespace of the operator release."
  value       = var.operator_namespace
}

output "operator_release_name" {
  description = "Helm release name of the operator (null when install_operator = false)."
  value       = var.install_operator ? helm_release.operator[0].name : null
}

output "instance_release_name" {
  description = "Helm release name of the instance chart (null when install_instance = false)."
  value       = var.install_instance ? helm_release.instance[0].name : null
}

output "service_account_name" {
  description = "The workload ServiceAccount every W&B pod and migration Job runs as (<instance_name>-app unless overridden)."
  value       = local.service_account_name
}

output "service_account_subjects" {
  description = "Kubernetes subjects for cloud IAM bindings (IRSA trust policy `sub`, GKE Workload Identity member, Azure federated credential subject)."
  value       = ["system:serviceaccount:${var.instance_namespace}:${local.service_account_name}"]
}

output "connection_secret_names" {
  description = "Operator-owned Secrets (instance_namespace) publishing each backing service's connection, by service."
  value       = local.connection_secret_names
}

output "license_secret" {
  description = "The Secret key the resource reads the license from (null when no license was given)."
  value       = local.license_ref
}

output "instance_spec" {
  description = "The spec rendered into the WeightsAndBiases resource, before instance_spec_override (references only, no secret values)."
  value       = local.spec
}
