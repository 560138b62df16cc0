#!/usr/bin/env python3
"""Wraps a flat protected-mode image in a bzImage: mkbzimage.py IMAGE.elf IMAGE.bin OUT

The result carries a boot sector and one setup sector with a setup header for
boot protocol 2.15 (Documentation/arch/x86/boot.rst).  The image is not
relocatable: it runs at 1 MiB, with its 64-bit entry at offset 0x200.  The ELF
gives the entry point to check and the end of bss, which init_size covers.
"""
import struct
import sys

LOAD_ADDR = 0x100000
SETUP_SECTS = 1
VERSION = 0x020f
HEADER_END = 0x268           # the 2.15 header ends after handover_offset
KERNEL_VERSION_OFF = 0x270   # a NUL-terminated string in the setup sector
LOADED_HIGH = 0x01
XLF_KERNEL_64 = 0x0001
CMDLINE_SIZE = 2047          # Linux's COMMAND_LINE_SIZE - 1
INITRD_ADDR_MAX = 0x7fffffff
SHF_ALLOC = 0x2
SHT_NOBITS = 8


def die(msg):
    sys.exit('mkbzimage.py: ' + msg)


def elf_layout(elf):
    """(entry, end of the highest allocated section) of an ELF64 little-endian file."""
    if elf[:4] != b'\x7fELF' or elf[4] != 2 or elf[5] != 1:
        die('not a 64-bit little-endian ELF file')
    entry, = struct.unpack_from('<Q', elf, 0x18)
    shoff, = struct.unpack_from('<Q', elf, 0x28)
    shentsize, shnum = struct.unpack_from('<HH', elf, 0x3a)
    end = LOAD_ADDR
    for i in range(shnum):
        _, _, flags, addr, _, size = struct.unpack_from('<IIQQQQ', elf, shoff + i * shentsize)
        if flags & SHF_ALLOC and size:
            end = max(end, addr + size)
    return entry, end


def setup_area(syssize, init_size):
    """Boot sector and setup sectors: never run by a 64-bit loader, but the header is."""
    s = bytearray(512 * (1 + SETUP_SECTS))
    # A 16-bit 'cli; hlt; jmp .-1' for a BIOS that boots this from a disk, and what it is.
    s[0:4] = b'\xfa\xf4\xeb\xfd'
    note = b'veil linuxboot test firmware: boot it with a Linux boot loader\0'
    s[4:4 + len(note)] = note
    struct.pack_into('<BHIHHHH', s, 0x1f1,
                     SETUP_SECTS, 0, syssize, 0, 0xffff, 0, 0xaa55)
    s[0x200:0x202] = bytes([0xeb, HEADER_END - 0x202])  # jmp short over the header
    struct.pack_into('<4sHIHHBBHI', s, 0x202,
                     b'HdrS', VERSION,
                     0,                                 # realmode_swtch
                     0x1000,                            # start_sys_seg
                     KERNEL_VERSION_OFF - 0x200,        # kernel_version
                     0,                                 # type_of_loader: the loader's
                     LOADED_HIGH,                       # loadflags
                     0x8000,                            # setup_move_size
                     LOAD_ADDR)                         # code32_start
    struct.pack_into('<IIIHBBIIIBBHIIQIIQQII', s, 0x218,
                     0, 0,                              # ramdisk_image, ramdisk_size
                     0,                                 # bootsect_kludge
                     0, 0, 0,                           # heap_end_ptr, ext_loader_ver/type
                     0,                                 # cmd_line_ptr
                     INITRD_ADDR_MAX,
                     LOAD_ADDR,                         # kernel_alignment
                     0,                                 # relocatable_kernel
                     12,                                # min_alignment: 4 KiB
                     XLF_KERNEL_64,                     # xloadflags
                     CMDLINE_SIZE,
                     0, 0,                              # hardware_subarch and its data
                     0, 0,                              # payload_offset, payload_length
                     0,                                 # setup_data
                     LOAD_ADDR,                         # pref_address
                     init_size,
                     0)                                 # handover_offset
    s[HEADER_END:HEADER_END + 4] = b'\xfa\xf4\xeb\xfd'  # the real-mode setup code: halt
    version = b'veil-linuxboot\0'
    s[KERNEL_VERSION_OFF:KERNEL_VERSION_OFF + len(version)] = version
    assert len(s) == 512 * (1 + SETUP_SECTS)
    return s


def main():
    if len(sys.argv) != 4:
        die('usage: mkbzimage.py IMAGE.elf IMAGE.bin OUT')
    elf_path, bin_path, out_path = sys.argv[1:4]
    entry, end = elf_layout(open(elf_path, 'rb').read())
    image = bytearray(open(bin_path, 'rb').read())
    if entry != LOAD_ADDR + 0x200:
        die(f'{elf_path}: entry 0x{entry:x}, the 64-bit entry must be at 0x{LOAD_ADDR + 0x200:x}')
    if len(image) <= 0x200 or LOAD_ADDR + len(image) > end:
        die(f'{bin_path}: {len(image)} bytes does not fit the ELF layout')
    image += bytes(-len(image) % 16)  # syssize counts 16-byte paragraphs
    init_size = (end - LOAD_ADDR + 0xfff) & ~0xfff
    with open(out_path, 'wb') as out:
        out.write(setup_area(len(image) // 16, init_size))
        out.write(image)


if __name__ == '__main__':
    main()
