terraform {
  required_providers {
    sim = {
      source  = "formwork.local/formwork/sim"
      version = "0.1.0"
    }
  }
}

variable "api_token" {
  description = "Token of the simulated cloud account"
  type        = string
  sensitive   = true
}

variable "endpoint" {
  description = "Folder holding the simulated cloud's records"
  type        = string
  default     = "/tmp/formwork-sim-cloud"
}

provider "sim" {
  token = var.api_token
  root  = var.endpoint
}
