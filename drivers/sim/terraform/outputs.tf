output "provisioned_hosts" {
  description = "The hosts made, as OneForm reads them"
  value = [
    for h in sim_host.host : {
      instance_id = h.id
      instance_ip = h.ip
    }
  ]
}
