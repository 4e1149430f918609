resource "sim_host" "host" {
  count         = var.oneform_hosts
  name          = "host-${count.index}"
  instance_type = var.instance_type
  zone          = var.zone
  cidr_block    = var.cidr_block
  tags          = var.oneform_tags
}
