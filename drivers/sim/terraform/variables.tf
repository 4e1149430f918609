variable "oneform_hosts" {
  description = "Number of hosts to create"
  type        = number
  default     = 1
}

variable "instance_type" {
  description = "Size of each host"
  type        = string
  default     = "small"
}

variable "region" {
  description = "Region of the simulated cloud"
  type        = string
  default     = "eu-west"
}

variable "zone" {
  description = "Zone inside the region"
  type        = string
  default     = "eu-west-1a"
}

variable "cidr_block" {
  description = "CIDR block the hosts' addresses come from"
  type        = string
  default     = "10.10.0.0/24"
}

variable "oneform_tags" {
  description = "Tags given to every resource"
  type        = map(string)
  default     = {}
}
