terraform {
  # terraform_data (the wait for the Ready condition) needs Terraform >= 1.4; optional() object
  # attributes with defaults need >= 1.3.
  required_version = ">= 1.5.0"

  required_providers {
    # Only resource arguments common to helm provider v1.3.2, v2.x and v3.x are used (no `set`
    # blocks), so any of them works. The provider *configuration* syntax differs (a
    # `kubernetes {}` block up to v2, a `kubernetes = {}` attribute in v3): that lives in the
    # caller's provider block, not here. See README.md.
    helm = {
      source  = "hashicorp/helm"
      version = ">= 1.3.2"
    }
    # kubernetes_namespace and kubernetes_secret exist from v1.13 up to the current release.
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 1.13.4"
    }
  }
}
