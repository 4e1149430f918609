variable "oneform_onprem_hosts" {
  description = "Addresses (IPv4, IPv6 or hostnames) of the hosts to add, reachable over SSH"
  type        = list(string)
}

variable "oneform_tags" {
  description = "Tags given to the OpenNebula objects"
  type        = map(string)
  default     = {}
}
