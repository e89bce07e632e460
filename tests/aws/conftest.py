"""A VPC, two subnets, a security group, a DB subnet group and a primary instance, in moto."""
from dataclasses import dataclass

import boto3
import pytest


@dataclass
class RdsNetwork:
    rds: object
    security_group: str
    subnet_group: str
    primary: str


@pytest.fixture
def rds_network(moto_aws) -> RdsNetwork:
    ec2 = boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"eu-west-1{z}")["Subnet"]["SubnetId"]
               for i, z in ((1, "a"), (2, "b"))]
    sg = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    rds = boto3.client("rds")
    rds.create_db_subnet_group(DBSubnetGroupName="pgops-dev", DBSubnetGroupDescription="pgops", SubnetIds=subnets)
    rds.create_db_instance(DBInstanceIdentifier="pgops-dev-primary", DBInstanceClass="db.t4g.micro", Engine="postgres",
                           AllocatedStorage=20, MasterUsername="ops", MasterUserPassword="not-a-real-secret",
                           DBSubnetGroupName="pgops-dev", VpcSecurityGroupIds=[sg])
    return RdsNetwork(rds, sg, "pgops-dev", "pgops-dev-primary")
