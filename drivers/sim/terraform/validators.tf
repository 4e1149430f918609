# Written as OneForm's HCL reader (the hcl_parser gem over rhcl, an HCL 1 grammar) can read it,
# as well as Terraform: an object's items on lines of their own (no commas between them), map
# keys as bare words, and no escapes in strings (rhcl reads them raw). tests/oneform_hcl.rs
# checks it.
locals {
  validators = {
    oneform_hosts = {
      type = "number"
      values = {
        min = 1
        max = 50
      }
    }

    instance_type = {
      type   = "list"
      values = ["small", "medium", "large"]
    }

    region = {
      type   = "list"
      values = ["eu-west", "us-east"]
    }

    zone = {
      type       = "map"
      grouped_by = "region"
      values = {
        eu-west = ["eu-west-1a", "eu-west-1b"]
        us-east = ["us-east-1a", "us-east-1b", "us-east-1c"]
      }
    }

    cidr_block = {
      type = "string"
      values = {
        regex = "^([0-9]{1,3}[.]){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$"
      }
    }
  }
}
