"""Writes the two workbook samples from the ServiceNow CSV sample, so that the
machines overlap across exports as they do on a real engagement:

- RVTools_export_all.xlsx: an RVTools 4.x export (vInfo, vCPU, vMemory, vDisk,
  vPartition, vNetwork, vHost, vMetaData) of every virtual server of the CMDB
  sample plus 4 VMs the CMDB does not know, on 4 ESXi hosts in 2 clusters.
- servicenow_cmdb_ci_server_export.xlsx: ServiceNow's "Export > Excel" of the
  same CMDB table, which writes column labels ("RAM (MB)", "Disk space (GB)").

    pip install openpyxl==3.1.5 && python3 samples/make_workbook_samples.py
"""
import csv
import datetime as dt
import hashlib
import os
import random
import uuid

import openpyxl

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(42)

with open(os.path.join(HERE, "servicenow_cmdb_ci_server.csv"), encoding="utf-8") as f:
    cmdb = list(csv.DictReader(f))


def number(text, default):
    """The leading number of a CMDB value ("16 GB" is 16384 MB for ram)."""
    digits = "".join(ch for ch in (text or "") if ch.isdigit() or ch == ".")
    if not digits:
        return default
    value = float(digits)
    return value * 1024 if "GB" in (text or "").upper() else value


def stable_uuid(*parts):
    return str(uuid.UUID(hashlib.md5("|".join(parts).encode()).hexdigest()))


VCENTER = "vcsa01.corp.example.com"
VCENTER_UUID = stable_uuid("vcenter")
HOSTS = [
    ("esx01.corp.example.com", "DC-Frankfurt", "CL-PROD-01"),
    ("esx02.corp.example.com", "DC-Frankfurt", "CL-PROD-01"),
    ("esx03.corp.example.com", "DC-Amsterdam", "CL-DEV-01"),
    ("esx04.corp.example.com", "DC-Amsterdam", "CL-DEV-01"),
]

vms = []
for row in cmdb:
    if row["virtual"].lower() != "true":
        continue
    os_name = row["os"]
    windows = "windows" in os_name.lower()
    vms.append({
        "name": row["name"],
        "dns": row["fqdn"],
        # The CMDB sample has lists and blanks; RVTools reports one primary address.
        "ip": (row["ip_address"].replace(";", ",").split(",")[0].strip() or "10.99.0.%d" % (len(vms) + 1)),
        "mac": (row["mac_address"].replace(";", ",").split(",")[0].strip().lower() or "00:50:56:00:00:%02x" % len(vms)),
        "cpus": int(number(row["cpu_count"], 1)) * int(number(row["cpu_core_count"], 1)),
        "memory_mib": int(number(row["ram"], 4096)),
        "disk_gib": int(number(row["disk_space"], 100)),
        "os": (f"Microsoft {os_name} (64-bit)" if windows else f"Red Hat Enterprise Linux {row['os_version'].split('.')[0]} (64-bit)"),
        "annotation": row["short_description"],
    })
for i, extra in enumerate(["lnx-tmp-91", "WIN-JUMP-92", "lnx-k8s-93", "lnx-k8s-94"]):
    vms.append({
        "name": extra,
        "dns": f"{extra.lower()}.corp.example.com",
        "ip": f"10.40.{i}.{20 + i}",
        "mac": "00:50:56:%02x:%02x:%02x" % (rng.randrange(256), rng.randrange(256), rng.randrange(256)),
        "cpus": rng.choice([2, 4, 8]),
        "memory_mib": rng.choice([4096, 8192, 16384]),
        "disk_gib": rng.choice([60, 120, 250]),
        "os": "Microsoft Windows Server 2022 (64-bit)" if "WIN" in extra else "Ubuntu Linux (64-bit)",
        "annotation": "",
    })
for i, vm in enumerate(vms):
    host, datacenter, cluster = HOSTS[i % len(HOSTS)]
    vm.update(host=host, datacenter=datacenter, cluster=cluster,
              uuid=stable_uuid("vm", vm["name"]), moref=f"vm-{1000 + i}",
              power=("poweredOff" if i % 9 == 8 else "poweredOn"))

wb = openpyxl.Workbook()
info = wb.active
info.title = "vInfo"
info_cols = ["VM", "Powerstate", "Template", "SRM Placeholder", "Config status", "DNS Name",
             "Connection state", "Guest state", "Heartbeat", "Consolidation Needed", "PowerOn",
             "Creation date", "CPUs", "Memory", "NICs", "Disks", "Total disk capacity MiB",
             "Network #1", "Resource pool", "Folder", "Provisioned MiB", "In Use MiB",
             "Unshared MiB", "HA Restart Priority", "Firmware", "HW version", "Path",
             "Annotation", "Datacenter", "Cluster", "Host",
             "OS according to the configuration file", "OS according to the VMware Tools",
             "Primary IP Address", "VM ID", "VM UUID", "SMBIOS UUID", "VI SDK Server",
             "VI SDK UUID"]
info.append(info_cols)
for vm in vms:
    total_mib = vm["disk_gib"] * 1024
    on = vm["power"] == "poweredOn"
    info.append([
        vm["name"], vm["power"], False, False, "green", vm["dns"] if on else "",
        "connected", "running" if on else "notRunning", "green" if on else "gray", False,
        dt.datetime(2025, 11, 2, 3, 14, 0) if on else None, dt.datetime(2021, 3, 1, 9, 0, 0),
        vm["cpus"], vm["memory_mib"], 1, 1, total_mib, "VLAN-" + vm["ip"].split(".")[1],
        "Resources", "/Servers", total_mib + vm["memory_mib"], int(total_mib * 0.62),
        int(total_mib * 0.6), "medium", "efi", "vmx-19",
        f"[DS-{vm['cluster']}] {vm['name']}/{vm['name']}.vmx", vm["annotation"],
        vm["datacenter"], vm["cluster"], vm["host"], vm["os"], vm["os"] if on else "",
        vm["ip"] if on else "", vm["moref"], vm["uuid"], stable_uuid("bios", vm["name"]),
        VCENTER, VCENTER_UUID,
    ])

def sheet(title, cols, rows):
    ws = wb.create_sheet(title)
    ws.append(cols)
    for r in rows:
        ws.append(r)

tail = lambda vm: [vm["datacenter"], vm["cluster"], vm["host"], vm["os"], vm["moref"], vm["uuid"], VCENTER, VCENTER_UUID]
tail_cols = ["Datacenter", "Cluster", "Host", "OS according to the configuration file", "VM ID", "VM UUID", "VI SDK Server", "VI SDK UUID"]
sheet("vCPU", ["VM", "Powerstate", "Template", "CPUs", "Sockets", "Cores p/s", "Max", "Overall", "Level", "Shares", "Reservation", "Entitlement", "DRS Entitlement", "Limit", "Hot Add", "Hot Remove", "Annotation"] + tail_cols,
      [[vm["name"], vm["power"], False, vm["cpus"], max(1, vm["cpus"] // 2), min(2, vm["cpus"]), vm["cpus"] * 2400, rng.randrange(50, 2400), "normal", vm["cpus"] * 1000, 0, "", "", -1, False, False, vm["annotation"]] + tail(vm) for vm in vms])
sheet("vMemory", ["VM", "Powerstate", "Template", "Size MiB", "Overhead", "Max", "Consumed", "Consumed Overhead", "Private", "Shared", "Swapped", "Ballooned", "Active", "Entitlement", "DRS Entitlement", "Level", "Shares", "Reservation", "Limit", "Hot Add", "Annotation"] + tail_cols,
      [[vm["name"], vm["power"], False, vm["memory_mib"], 64, vm["memory_mib"], int(vm["memory_mib"] * 0.7), 40, int(vm["memory_mib"] * 0.6), 10, 0, 0, int(vm["memory_mib"] * 0.2), "", "", "normal", vm["memory_mib"] * 10, 0, -1, True, vm["annotation"]] + tail(vm) for vm in vms])
disk_rows = []
for vm in vms:
    sizes = [min(vm["disk_gib"], 100)] + ([vm["disk_gib"] - 100] if vm["disk_gib"] > 100 else [])
    for n, gib in enumerate(sizes, start=1):
        disk_rows.append([vm["name"], vm["power"], False, f"Hard disk {n}", gib * 1024, "persistent", True, f"SCSI controller 0", f"0:{n - 1}", f"[DS-{vm['cluster']}] {vm['name']}/{vm['name']}_{n}.vmdk"] + tail(vm))
sheet("vDisk", ["VM", "Powerstate", "Template", "Disk", "Capacity MiB", "Disk Mode", "Thin", "Controller", "Unit #", "Path"] + tail_cols, disk_rows)
part_rows = []
for vm in vms:
    if vm["power"] != "poweredOn":
        continue
    windows = "Windows" in vm["os"]
    cap = vm["disk_gib"] * 1024
    part_rows.append([vm["name"], vm["power"], False, "C:\\" if windows else "/", cap, int(cap * 0.58), cap - int(cap * 0.58), 42.0] + tail(vm))
sheet("vPartition", ["VM", "Powerstate", "Template", "Disk", "Capacity MiB", "Consumed MiB", "Free MiB", "Free %"] + tail_cols, part_rows)
sheet("vNetwork", ["VM", "Powerstate", "Template", "NIC label", "Adapter", "Network", "Switch", "Connected", "Starts Connected", "Mac Address", "Type", "IPv4 Address", "IPv6 Address"] + tail_cols,
      [[vm["name"], vm["power"], False, "Network adapter 1", "Vmxnet3", "VLAN-" + vm["ip"].split(".")[1], "dvs-prod", True, True, vm["mac"], "assigned", vm["ip"], ""] + tail(vm) for vm in vms])
sheet("vHost", ["Host", "Datacenter", "Cluster", "Config status", "in Maintenance Mode", "CPU Model", "Speed", "HT Available", "HT Active", "# CPU", "Cores per CPU", "# Cores", "CPU usage %", "# Memory", "Memory usage %", "# VMs", "ESX Version", "Vendor", "Model", "Serial number", "Service tag", "BIOS Version", "VI SDK Server", "VI SDK UUID"],
      [[h, d, c, "green", False, "Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", 2993, True, True, 2, 24, 48, rng.randrange(15, 70), 786_432, rng.randrange(30, 80), sum(1 for vm in vms if vm["host"] == h), "VMware ESXi 7.0.3 build-21930508", "Dell Inc.", "PowerEdge R740", f"SN{i:06d}X", f"7TG{i}3K2", "2.19.1", VCENTER, VCENTER_UUID] for i, (h, d, c) in enumerate(HOSTS)])
sheet("vMetaData", ["RVTools major version", "RVTools version", "xlsx creation datetime", "Server"],
      [[4, "4.6.1.0", dt.datetime(2025, 11, 3, 7, 45, 12), VCENTER]])
wb.save(os.path.join(HERE, "RVTools_export_all.xlsx"))

# ServiceNow "Export > Excel" of cmdb_ci_server: labels, typed cells, one sheet "Page 1".
labels = [("Name", "name"), ("Class", "sys_class_name"), ("Fully qualified domain name", "fqdn"),
          ("IP Address", "ip_address"), ("MAC Address", "mac_address"), ("Operating System", "os"),
          ("OS Version", "os_version"), ("CPU count", "cpu_count"), ("CPU core count", "cpu_core_count"),
          ("CPU speed (MHz)", "cpu_speed"), ("RAM (MB)", "ram"), ("Disk space (GB)", "disk_space"),
          ("Virtual", "virtual"), ("Serial number", "serial_number"), ("Asset tag", "asset_tag"),
          ("Manufacturer", "manufacturer"), ("Model ID", "model_id"), ("Location", "location"),
          ("Cost center", "cost_center"), ("Used for", "used_for"), ("Install Status", "install_status"),
          ("Operational status", "operational_status"), ("Support group", "support_group"),
          ("Description", "short_description"), ("Most recent discovery", "last_discovered"),
          ("Updated", "sys_updated_on")]
numeric = {"cpu_count", "cpu_core_count", "cpu_speed", "ram", "disk_space"}
install = {"1": "Installed", "7": "Retired", "6": "In Stock"}
operational = {"1": "Operational", "2": "Non-Operational", "6": "Retired"}
wb = openpyxl.Workbook()
ws = wb.active
ws.title = "Page 1"
ws.append([label for label, _ in labels])
for row in cmdb:
    values = []
    for _, key in labels:
        v = row[key]
        if key in numeric and v and v.replace(".", "").isdigit():
            v = int(float(v))
        elif key == "virtual":
            v = v.lower() == "true"
        elif key in ("last_discovered", "sys_updated_on") and v:
            v = dt.datetime.strptime(v, "%Y-%m-%d %H:%M:%S")
        elif key == "install_status":
            v = install.get(v, v)
        elif key == "operational_status":
            v = operational.get(v, v)
        values.append(v if v != "" else None)
    ws.append(values)
for row in ws.iter_rows(min_row=2):
    for cell in row:
        if isinstance(cell.value, dt.datetime):
            cell.number_format = "yyyy-mm-dd hh:mm:ss"
wb.save(os.path.join(HERE, "servicenow_cmdb_ci_server_export.xlsx"))
