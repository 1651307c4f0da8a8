//! The codec of every gRPC service Atoll serves or calls: prost encoding, with buffers that
//! start small.
//!
//! tonic's default reserves 8 KiB to encode and 8 KiB to decode on every stream and keeps
//! both for the stream's life. Atoll's streams live for hours (one ADS stream per proxy, two
//! KDS streams per zone) while most of their messages are a few kB, so the buffers start at
//! [`BUFFER`] and grow, in steps of that size, only as far as a message needs.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// What each stream's encode and decode buffers start at, and grow by.
pub const BUFFER: usize = 1024;
/// Encoded messages queued beyond this are handed to HTTP/2 before more are encoded (tonic's
/// default is 32 KiB). The buffer keeps the size of the largest batch it ever held, so a burst
/// of KDS chunks would otherwise leave 64 KiB per stream.
const YIELD_THRESHOLD: usize = 8 * 1024;

/// Prost encoding with [`BUFFER`]-sized buffers.
#[derive(Debug, Clone, Copy)]
pub struct SmallBuffers<Out, In>(PhantomData<(Out, In)>);

impl<Out, In> Default for SmallBuffers<Out, In> {
    fn default() -> Self {
        SmallBuffers(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER, YIELD_THRESHOLD)
}

impl<Out, In> Codec for SmallBuffers<Out, In>
where
    Out: prost::Message + Send + 'static,
    In: prost::Message + Default + Send + 'static,
{
    type Encode = Out;
    type Decode = In;
    type Encoder = ProstEncoder<Out>;
    type Decoder = ProstDecoder<In>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<Out, In>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<Out, In>::raw_decoder(settings())
    }
}
