output "provisioned_hosts" {
  description = "The given hosts, as OneForm reads them"
  value = [
    for ip in var.oneform_onprem_hosts : {
      instance_id = ip
      instance_ip = ip
    }
  ]
}
