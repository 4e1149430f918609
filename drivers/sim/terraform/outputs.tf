output "provisioned_hosts" {
  description = "The hosts made, as OneForm reads them"
  value = [
    for h in sim_host.host : {
      instance_id = h.id
      instance_ip = h.ip
    }
  ]
}

# The deployment template's variables (OneForm's) do not carry the provider's connection, so
# the sim cloud's folder reaches Ansible through the Terraform state: the playbook reads this
# output from `../terraform/terraform.tfstate` and finds each host's machine directory under it.
output "sim_cloud" {
  description = "Absolute path of the sim cloud's folder (the provider's root)"
  value       = abspath(var.endpoint)
}
