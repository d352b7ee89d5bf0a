//! A small reader of ONNX's protobuf: the initializers of a `ModelProto` whose data lies in an
//! external file, which is all that sharing a cache entry's weights needs. It reads untrusted
//! bytes: every length is checked, and a cut or malformed model is an error, never a panic.

/// One weight of the entry: where its bytes lie in the data file.
#[derive(Debug, PartialEq, Eq)]
pub struct External {
    pub name: String,
    pub data_type: i32,
    pub dims: Vec<i64>,
    pub offset: usize,
    pub length: usize,
}

/// The initializers of an ONNX `ModelProto` whose data lies in an external file.
pub fn externals(model: &[u8]) -> std::result::Result<Vec<External>, String> {
    let mut found = Vec::new();
    for field in Fields::new(model) {
        let (number, value) = field?;
        // ModelProto.graph = 7; GraphProto.initializer = 5
        if let (7, Value::Bytes(graph)) = (number, value) {
            for field in Fields::new(graph) {
                if let (5, Value::Bytes(tensor)) = field? {
                    found.extend(external(tensor)?);
                }
            }
        }
    }
    Ok(found)
}

fn external(tensor: &[u8]) -> std::result::Result<Option<External>, String> {
    let (mut name, mut data_type, mut dims) = (String::new(), 0, Vec::new());
    let (mut offset, mut length, mut stored_outside) = (None, None, false);
    for field in Fields::new(tensor) {
        match field? {
            (1, Value::Varint(d)) => dims.push(d as i64),
            (1, Value::Bytes(packed)) => {
                let mut r = Fields::new(packed);
                while r.pos < packed.len() {
                    dims.push(r.varint()? as i64);
                }
            }
            (2, Value::Varint(t)) => data_type = t as i32,
            (8, Value::Bytes(n)) => name = String::from_utf8_lossy(n).into_owned(),
            (13, Value::Bytes(entry)) => {
                let (mut key, mut value) = ("", "");
                for field in Fields::new(entry) {
                    match field? {
                        (1, Value::Bytes(k)) => key = std::str::from_utf8(k).unwrap_or(""),
                        (2, Value::Bytes(v)) => value = std::str::from_utf8(v).unwrap_or(""),
                        _ => {}
                    }
                }
                let number = value.parse::<usize>().ok();
                match key {
                    "offset" => offset = number,
                    "length" => length = number,
                    _ => {}
                }
            }
            (14, Value::Varint(1)) => stored_outside = true,
            _ => {}
        }
    }
    Ok(match (stored_outside, length) {
        (true, Some(length)) => Some(External {
            name,
            data_type,
            dims,
            offset: offset.unwrap_or(0),
            length,
        }),
        _ => None,
    })
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of one protobuf message, in order.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields {
            buf,
            pos: 0,
            failed: false,
        }
    }

    fn varint(&mut self) -> std::result::Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or("ends inside a number")?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("has a number longer than 10 bytes".into())
    }

    fn skip(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or("ends inside a field")?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn next_field(&mut self) -> std::result::Result<(u32, Value<'a>), String> {
        let key = self.varint()?;
        let number = (key >> 3) as u32;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => self.skip(8).map(|_| Value::Fixed)?,
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| "has a field too long")?;
                Value::Bytes(self.skip(n)?)
            }
            5 => self.skip(4).map(|_| Value::Fixed)?,
            wire => return Err(format!("has a field of wire type {wire}, not ONNX's")),
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = std::result::Result<(u32, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let field = self.next_field();
        self.failed = field.is_err();
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn bytes(number: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    fn number(number: u64, v: u64, out: &mut Vec<u8>) {
        varint(number << 3, out);
        varint(v, out);
    }

    fn entry(key: &str, value: &str) -> Vec<u8> {
        let mut e = Vec::new();
        bytes(1, key.as_bytes(), &mut e);
        bytes(2, value.as_bytes(), &mut e);
        e
    }

    /// A ModelProto with an external weight (packed dims), an inline one and other fields.
    fn model() -> Vec<u8> {
        let mut outside = Vec::new();
        let mut dims = Vec::new();
        varint(384, &mut dims);
        varint(1536, &mut dims);
        bytes(1, &dims, &mut outside);
        number(2, 3, &mut outside);
        bytes(8, b"layer.0.ffn.up", &mut outside);
        bytes(13, &entry("location", "model.onnx.data"), &mut outside);
        bytes(13, &entry("offset", "4096"), &mut outside);
        bytes(13, &entry("length", "589824"), &mut outside);
        number(14, 1, &mut outside);
        let mut inline = Vec::new();
        number(1, 4, &mut inline);
        number(2, 1, &mut inline);
        bytes(8, b"scale", &mut inline);
        bytes(9, &[0; 16], &mut inline);
        let mut graph = Vec::new();
        bytes(1, b"a node", &mut graph);
        bytes(5, &outside, &mut graph);
        bytes(5, &inline, &mut graph);
        let mut model = Vec::new();
        number(1, 10, &mut model);
        varint(3 << 3 | 5, &mut model);
        model.extend_from_slice(&[0; 4]);
        bytes(7, &graph, &mut model);
        model
    }

    #[test]
    fn finds_the_weights_stored_outside() {
        let found = externals(&model()).expect("parses");
        let expected = External {
            name: "layer.0.ffn.up".into(),
            data_type: 3,
            dims: vec![384, 1536],
            offset: 4096,
            length: 589824,
        };
        assert_eq!(found, vec![expected]);
    }

    #[test]
    fn a_cut_or_damaged_model_is_an_error_not_a_panic() {
        let model = model();
        for end in 0..model.len() {
            let _ = externals(&model[..end]);
        }
        assert!(externals(&model[..model.len() - 3]).is_err());
        assert!(externals(&[0x0f, 1, 2, 3]).is_err(), "wire type 7");
        assert!(externals(&[0xff; 11]).is_err(), "endless number");
    }
}
