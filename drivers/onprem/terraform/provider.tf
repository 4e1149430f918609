# On-prem provisions never run Terraform: their hosts come from `oneform_onprem_hosts`.
# The folder exists because every OneForm driver has one.
terraform {
  required_version = ">= 1.0"
}
