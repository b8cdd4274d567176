#pragma once

// <linux/virtio_net.h> for C++: its struct virtio_net_ctrl_hdr has a member
// named `class`, a C++ keyword, so a plain #include does not compile. It is
// renamed `class_` for this one include. Include this header, never
// <linux/virtio_net.h> directly (a second direct include is harmless only
// after this one, thanks to the header's include guard).

#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wkeyword-macro"
#endif
#define class class_
#include <linux/virtio_net.h>
#undef class
#if defined(__clang__)
#pragma clang diagnostic pop
#endif
